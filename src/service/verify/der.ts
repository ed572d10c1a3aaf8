/** One DER element: its tag and where its whole encoding and its contents lie. */
interface Element {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

function element(der: Uint8Array, at: number): Element {
  const tag = der[at];
  let len = der[at + 1];
  if (tag === undefined || len === undefined) throw new Error('certificate: truncated DER');
  let contentStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('certificate: unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[contentStart + i] ?? Number.NaN);
    contentStart += n;
  }
  const end = contentStart + len;
  if (!Number.isFinite(end) || end > der.length) throw new Error('certificate: DER element runs past the end');
  return { tag, start: at, contentStart, end };
}

function children(der: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const e = element(der, at);
    out.push(e);
    at = e.end;
  }
  return out;
}

/** The DER bytes of a PEM certificate. */
export function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error('certificate: no PEM CERTIFICATE block');
  const bin = atob(m[1]!.replace(/\s+/g, ''));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * The SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1), which WebCrypto imports as 'spki'.
 * Web Crypto has no certificate parser, and walking six fields of DER is all SNS verification needs.
 */
export function spkiOfCertificate(der: Uint8Array): Uint8Array<ArrayBuffer> {
  const cert = element(der, 0);
  const [tbs] = children(der, cert);
  if (cert.tag !== 0x30 || tbs?.tag !== 0x30) throw new Error('certificate: not an X.509 certificate');
  const fields = children(der, tbs);
  // [0] version is optional; then serial, signature, issuer, validity, subject, subjectPublicKeyInfo.
  const spki = fields[(fields[0]?.tag === 0xa0 ? 1 : 0) + 5];
  if (spki?.tag !== 0x30) throw new Error('certificate: no subjectPublicKeyInfo');
  return der.slice(spki.start, spki.end);
}

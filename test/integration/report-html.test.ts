import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { emptyReport } from '../../src/core/scan/scan.ts';
import { renderReportHtml } from '../../src/core/output/report-html.ts';
import { shipOf } from '../../src/core/output/report.ts';
import { openInChromium, screenshotInChromium } from '../helpers/chromium.ts';
import { fixtureScanArgs, runCliShared, type CliRun } from '../helpers/cli.ts';
import { MODELS } from '../helpers/fixtures.ts';

// report.html as a reviewer sees it: opened in a real headless browser (Debian's chromium).

let run: CliRun;
let html: string;
beforeAll(async () => {
  // The run e2e-backdoor.test.ts judges (shared, as neither changes it).
  run = await runCliShared(fixtureScanArgs(join(MODELS, 'mnist-badnets/model.json')));
  html = readFileSync(join(run.out, 'report.html'), 'utf8');
});

describe('report.html', () => {
  it('renders in chromium without a console message, verdict first, with the anomaly and Shapley charts and the trigger images', () => {
    expect(run.report?.verdict).toBe('backdoor');
    const page = openInChromium(join(run.out, 'report.html'));
    expect(page.console).toEqual([]);
    expect(page.dom).toMatch(/<div class="verdict" id="verdict">backdoor<\/div>/);
    const anomaly = /<svg id="trigger-size-chart"[\s\S]*?<\/svg>/.exec(page.dom)![0];
    expect(anomaly.match(/<rect /g)).toHaveLength(run.report!.detection!.classes.length);
    expect(anomaly.match(/fill="#cf222e"/g)).toHaveLength(run.report!.detection!.flagged.length);
    // The axis stops at twice the median, so one huge class does not flatten the rest.
    const tallest = Math.max(...run.report!.detection!.classes.map((c) => c.normRatio));
    expect(anomaly).toContain(`>${Math.min(2, tallest).toFixed(2)}</text>`);
    expect(page.dom).toMatch(/<svg id="shapley-6-0"/);
    expect(page.dom.match(/<img alt="(mask|pattern|synthesized input|with the trigger)"/g)).toHaveLength(4);
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  it('the console check can fail: the same page with an external image logs a CSP violation', () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'sg-html-')), 'bad.html');
    writeFileSync(bad, html.replace('<header>', '<header><img src="http://127.0.0.1:9/x.png">'));
    expect(openInChromium(bad).console.join('\n')).toMatch(/Content Security Policy/);
  });

  it('its PNG images decode in the browser at the model input size', () => {
    const urls = [...html.matchAll(/src="(data:image\/png;base64,[^"]+)"/g)].map((m) => m[1]!);
    expect(urls).toHaveLength(4);
    const harness = join(mkdtempSync(join(tmpdir(), 'sg-png-')), 'decode.html');
    writeFileSync(
      harness,
      `<!doctype html><body><script>
      const urls = ${JSON.stringify(urls)};
      Promise.all(urls.map((u) => new Promise((ok) => { const i = new Image(); i.onload = () => ok(i.naturalWidth + 'x' + i.naturalHeight); i.onerror = () => ok('broken'); i.src = u; })))
        .then((sizes) => console.log('SIZES ' + sizes.join(',')));
      </script></body>`,
    );
    const line = openInChromium(harness).console.find((l) => l.includes('SIZES'));
    expect(line).toMatch(/SIZES 28x28,28x28,28x28,28x28/);
  });

  it('leads with what was scanned, when, what it means and what to do, in words rather than raw values', () => {
    const r = run.report!;
    const text = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    expect(html).toMatch(new RegExp(`<h1 id="model">[^<]*mnist-badnets/model\\.json</h1>`));
    expect(html).toContain(`<code id="digest">${r.input!.digest.combined}</code>`);
    expect(text).toContain(`scanned ${r.timings.startedAt.slice(0, 10)}`);
    const advice = /<div class="advice" id="advice">([\s\S]*?)<\/div>/.exec(html)![1]!;
    expect(advice).toContain(`to class ${r.detection!.flagged.join(', ')}`);
    expect(advice).toMatch(shipOf(r) === 'repaired' ? /Ship the repaired model/ : /Ship nothing/);
    // Players are named by kind: a position of fc1's input map is no "channel".
    const positions = r.repair!.pruned.filter((p) => p.position !== null).length;
    const kinds = [r.repair!.pruned.length - positions > 0 ? 'channel' : null, positions > 0 ? 'position' : null].filter(Boolean);
    for (const k of kinds) expect(text).toMatch(new RegExp(`\\d+ ${k}s? (and \\d+ \\w+ )?pruned`));
    expect(text).not.toMatch(/channel\(s\)|not-needed|not-repaired|Reason\s+–/);
    // Both flagging rules, with the thresholds the report records.
    expect(text).toContain(`(1) its trigger is at most ${r.config.detection.maxNormRatio} of the median`);
    expect(text).toContain(`(2) at most ${r.config.detection.maxGap} of the next larger class`);
    // The Shapley chart's labels name their layer.
    const shapley = /<svg id="shapley-[\s\S]*?<\/svg>/.exec(html)![0];
    const layer = r.shapley[0]!.players[0]!.layer;
    expect(shapley).toContain(`>${layer}`);
  });

  it("coverage notes show as warnings above the verdict's advice, even on a clean report", async () => {
    const report = {
      ...run.report!,
      verdict: 'clean' as const,
      coverage: { ...run.report!.coverage!, notes: ['12% of synthetic images stayed below confidence 0.9'] },
    };
    const page = await renderReportHtml(report);
    const warn = page.indexOf('id="warnings"');
    expect(warn).toBeGreaterThan(page.indexOf('id="verdict"'));
    expect(warn).toBeLessThan(page.indexOf('id="advice"'));
    expect(page).toMatch(/<li>12% of synthetic images stayed below confidence 0\.9<\/li>/);
    expect(html.includes('id="warnings"')).toBe(run.report!.coverage!.notes.length > 0);
  });

  it('fits a phone and a desktop: no sideways scrolling, no overlapping chart labels (screenshots in out/screenshots)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-layout-'));
    const measured = join(dir, 'measure.html');
    // The page itself forbids scripts; this copy allows one inline script that measures the layout.
    writeFileSync(
      measured,
      html.replace("style-src 'unsafe-inline'", "style-src 'unsafe-inline'; script-src 'unsafe-inline'").replace(
        '</body>',
        `<script>addEventListener('load', () => {
            const overlaps = [];
            for (const svg of document.querySelectorAll('svg.chart')) {
              const boxes = [...svg.querySelectorAll('g text')].map((t) => [t.textContent, t.getBoundingClientRect()]);
              for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                const [a, p] = boxes[i], [b, q] = boxes[j];
                const w = Math.min(p.right, q.right) - Math.max(p.left, q.left), h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
                if (w > 0.5 && h > 0.5) overlaps.push(svg.id + ': ' + a + ' / ' + b);
              }
            }
            console.log('LAYOUT ' + JSON.stringify({ inner: innerWidth, scroll: document.documentElement.scrollWidth, charts: document.querySelectorAll('svg.chart').length, overlaps }));
          });</script></body>`,
      ),
    );
    // Chromium's windows are at least 500 px wide; a frame of the phone's width is the phone's viewport.
    const framed = (page: string, width: number, height: number) => {
      const path = join(dir, `frame-${width}.html`);
      writeFileSync(
        path,
        `<!doctype html><body style="margin:0"><iframe src="file://${page}" width="${width}" height="${height}" style="border:0;display:block"></iframe></body>`,
      );
      return path;
    };
    const shots = join(process.cwd(), 'out', 'screenshots');
    mkdirSync(shots, { recursive: true });
    for (const [name, width] of [
      ['desktop', 1280],
      ['phone', 390],
    ] as const) {
      const line = openInChromium(framed(measured, width, 900), [Math.max(500, width), 900]).console.find((l) => l.includes('LAYOUT '));
      const layout = JSON.parse(/LAYOUT (\{.*\})/.exec(line ?? '')![1]!) as {
        inner: number;
        scroll: number;
        charts: number;
        overlaps: string[];
      };
      expect(layout.inner).toBe(width);
      expect(layout.charts).toBeGreaterThanOrEqual(2);
      expect(layout.overlaps).toEqual([]);
      expect(layout.scroll, name).toBeLessThanOrEqual(width);
      const png = join(shots, `report-${name}.png`);
      screenshotInChromium(framed(join(run.out, 'report.html'), width, 2400), png, [Math.max(500, width), 2400]);
      expect(readFileSync(png).readUInt32BE(16)).toBe(Math.max(500, width));
      console.log(`report.html at ${width} px: ${png}`);
    }
  });

  it('says when the sizes are weighed over several synthesis starts, and names them', async () => {
    const one = await renderReportHtml(run.report!);
    expect(run.report!.detection!.starts).toHaveLength(1);
    expect(one).toContain('<th>trigger L1</th>');
    expect(one).not.toMatch(/synthesized from \d+ starts/);
    const d = run.report!.detection!;
    const two = { ...run.report!, detection: { ...d, starts: [d.starts[0]!, { ...d.starts[0]!, background: -2.5, median: 3.4 }] } };
    const html2 = await renderReportHtml(two);
    expect(html2).toContain('<th>size (mean share)</th>');
    expect(html2).toMatch(/synthesized from 2 starts \(backgrounds 0\.0, -2\.5\)/);
    expect(html2).toContain('3.4)');
  });

  it('an error report renders too, with its reason and no findings', async () => {
    const report = { ...emptyReport({ toolVersion: '0.0.0-test' }), reason: 'cannot read model.json: <not JSON>' };
    const path = join(mkdtempSync(join(tmpdir(), 'sg-html-')), 'report.html');
    writeFileSync(path, await renderReportHtml(report));
    const page = openInChromium(path);
    expect(page.console).toEqual([]);
    expect(page.dom).toContain('id="verdict">error</div>');
    expect(page.dom).toContain('cannot read model.json: &lt;not JSON&gt;');
    expect(page.dom).not.toContain('trigger-size-chart');
    expect(page.dom).toMatch(/Ship nothing on this report/);
  });
});

import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Writes report.json and, when given, repaired/ and report.html under `outDir` so that a reader never sees half an output:
 * the repaired folder is built aside and renamed into place, and the report (written last, also by
 * rename) is the mark that everything it names is complete.
 */
export async function writeOutputs(
  outDir: string,
  reportJson: string,
  repaired: ReadonlyMap<string, Uint8Array> | null,
  reportHtml?: string,
): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const tag = `${process.pid}-${Date.now()}`;
  const finalRepaired = join(outDir, 'repaired');
  await rm(join(outDir, 'report.json'), { force: true });
  await rm(join(outDir, 'report.html'), { force: true });
  // An attestation from an earlier run in this folder would describe other outputs.
  await rm(join(outDir, 'attestation.dsse.json'), { force: true });
  await rm(finalRepaired, { recursive: true, force: true });
  if (repaired) {
    const tmp = join(outDir, `.repaired-${tag}`);
    try {
      for (const [path, bytes] of repaired) {
        await mkdir(dirname(join(tmp, path)), { recursive: true });
        await writeFile(join(tmp, path), bytes);
      }
      await rename(tmp, finalRepaired);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }
  if (reportHtml !== undefined) await writeFileAtomic(join(outDir, 'report.html'), reportHtml);
  const tmpReport = join(outDir, `.report-${tag}.json`);
  await writeFile(tmpReport, reportJson);
  await rename(tmpReport, join(outDir, 'report.json'));
}

/** Writes a file by rename from a temporary sibling, so a reader never sees it half written. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}-${Date.now()}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

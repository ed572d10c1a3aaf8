import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { emptyReport } from '../../src/core/scan/scan.ts';
import { renderReportHtml } from '../../src/core/output/report-html.ts';
import { openInChromium } from '../helpers/chromium.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { MODELS } from '../helpers/fixtures.ts';

// report.html as a reviewer sees it: opened in a real headless browser (Debian's chromium).

let run: CliRun;
let html: string;
beforeAll(async () => {
  run = await runCli(['scan', join(MODELS, 'mnist-badnets/model.json'), '--out', '$OUT', '--seed', '1']);
  html = readFileSync(join(run.out, 'report.html'), 'utf8');
});

describe('report.html', () => {
  it('renders in chromium without a console message, verdict first, with the anomaly and Shapley charts and the trigger images', () => {
    expect(run.report?.verdict).toBe('backdoor');
    const page = openInChromium(join(run.out, 'report.html'));
    expect(page.console).toEqual([]);
    expect(page.dom).toMatch(/<div class="verdict" id="verdict">backdoor<\/div>/);
    const anomaly = /<svg id="anomaly-chart"[\s\S]*?<\/svg>/.exec(page.dom)![0];
    expect(anomaly.match(/<rect /g)).toHaveLength(run.report!.detection!.classes.length);
    expect(anomaly.match(/fill="#cf222e"/g)).toHaveLength(run.report!.detection!.flagged.length);
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

  it('an error report renders too, with its reason and no findings', async () => {
    const report = { ...emptyReport({ toolVersion: '0.0.0-test' }), reason: 'cannot read model.json: <not JSON>' };
    const path = join(mkdtempSync(join(tmpdir(), 'sg-html-')), 'report.html');
    writeFileSync(path, await renderReportHtml(report));
    const page = openInChromium(path);
    expect(page.console).toEqual([]);
    expect(page.dom).toContain('id="verdict">error</div>');
    expect(page.dom).toContain('cannot read model.json: &lt;not JSON&gt;');
    expect(page.dom).not.toContain('anomaly-chart');
  });
});

import type { ScanReport } from './report.ts';

/** The subset of SARIF 2.1.0 that shapguard writes. */
export interface SarifLog {
  $schema: string;
  version: '2.1.0';
  runs: {
    tool: { driver: { name: string; version: string; informationUri: string; rules: SarifRule[] } };
    results: SarifResult[];
    properties: { verdict: string; repairStatus: string | null };
  }[];
}

export interface SarifRule {
  id: string;
  name: string;
  shortDescription: { text: string };
  fullDescription: { text: string };
  help: { text: string };
  defaultConfiguration: { level: 'error' | 'warning' | 'note' };
  properties: { 'security-severity': string; tags: string[]; precision: string };
}

export interface SarifResult {
  ruleId: string;
  ruleIndex: number;
  level: 'error' | 'warning' | 'note';
  message: { text: string };
  locations: { physicalLocation: { artifactLocation: { uri: string } } }[];
  partialFingerprints: Record<string, string>;
  properties: Record<string, unknown>;
}

const RULES: SarifRule[] = [
  {
    id: 'SG001',
    name: 'BackdoorDetected',
    shortDescription: { text: 'Neural backdoor detected in an image classifier' },
    fullDescription: {
      text: 'A reverse-engineered trigger for this target class is abnormally small against the other classes: a small input pattern sends images of any class to it.',
    },
    help: {
      text: 'Do not deploy the model. Use the repaired model shapguard wrote (repaired/) only after checking it on your own data, or retrain from trusted data.',
    },
    defaultConfiguration: { level: 'error' },
    properties: { 'security-severity': '9.0', tags: ['security', 'ml', 'backdoor'], precision: 'high' },
  },
  {
    id: 'SG002',
    name: 'ScanIncomplete',
    shortDescription: { text: 'The backdoor scan did not cover every class' },
    fullDescription: { text: 'The budget ran out before every class was scanned, so the model is not known to be clean.' },
    help: { text: 'Raise --budget or --max-evals and scan again; never treat an incomplete scan as clean.' },
    defaultConfiguration: { level: 'warning' },
    properties: { 'security-severity': '5.0', tags: ['security', 'ml'], precision: 'high' },
  },
  {
    id: 'SG003',
    name: 'ScanError',
    shortDescription: { text: 'The model could not be scanned' },
    fullDescription: { text: 'The model file is malformed or could not be read, so nothing is known about it.' },
    help: { text: 'Fix the model file (the message says what is wrong) and scan again.' },
    defaultConfiguration: { level: 'error' },
    properties: { 'security-severity': '5.0', tags: ['security', 'ml'], precision: 'high' },
  },
  {
    id: 'SG004',
    name: 'UnsupportedModel',
    shortDescription: { text: 'The model uses something the scanner does not support' },
    fullDescription: {
      text: 'A layer, format or storage feature the scanner does not support (it never runs code from a model file), so nothing is known about the model.',
    },
    help: { text: 'Re-export the model without the named feature, or review it by other means.' },
    defaultConfiguration: { level: 'warning' },
    properties: { 'security-severity': '5.0', tags: ['security', 'ml'], precision: 'high' },
  },
];

/**
 * The report as SARIF 2.1.0 for code scanning: one result per flagged target, and one for a scan that
 * ended in error, unsupported or incomplete (an empty log would read as clean); a clean scan has none.
 * Fingerprints derive from the model's content digest, so the same model keeps the same alert.
 */
export function toSarif(report: ScanReport, artifactUri: string): SarifLog {
  const digest = report.input?.digest.combined ?? 'unknown';
  const result = (ruleId: string, text: string, key: string, properties: Record<string, unknown>): SarifResult => {
    const ruleIndex = RULES.findIndex((r) => r.id === ruleId);
    return {
      ruleId,
      ruleIndex,
      level: RULES[ruleIndex]!.defaultConfiguration.level,
      message: { text },
      locations: [{ physicalLocation: { artifactLocation: { uri: artifactUri } } }],
      partialFingerprints: { 'shapguardModel/v1': `${digest}:${ruleId}:${key}` },
      properties,
    };
  };
  const results: SarifResult[] = [];
  if (report.verdict === 'backdoor' && report.allToAll?.flagged) {
    const a = report.allToAll;
    results.push(
      result(
        'SG001',
        `All-to-all backdoor detected: one trigger sends each class to a target of its own (mapping ${a.mapping.map((t, s) => `${s}→${t}`).join(' ')}; score ${a.score}). Repair: ${report.repair?.status ?? 'none'}.`,
        'all-to-all',
        { mapping: a.mapping, score: a.score, repairStatus: report.repair?.status ?? null },
      ),
    );
  } else if (report.verdict === 'backdoor') {
    for (const target of report.detection?.flagged ?? []) {
      const cls = report.detection!.classes.find((c) => c.class === target);
      const repair = report.repair ? `${report.repair.status}${report.repair.reason ? ` (${report.repair.reason})` : ''}` : 'none';
      const universal = report.detection!.flaggedBy === 'pair-universality' ? (report.allToAll?.universal?.[target] ?? null) : null;
      const tendency = report.detection!.flaggedBy === 'head-tendency' ? (report.detection!.tendency ?? null) : null;
      const why =
        universal !== null
          ? `the other classes' pair triggers carry into class ${target} (median share ${universal}), though its own reversed trigger (mask norm ${cls?.maskNorm}) is no outlier`
          : tendency !== null
            ? `the classifier head leans to class ${target} from every other class (tendency ${tendency.anomaly} above the quartiles) and its reversed trigger is smallish (mask norm ${cls?.maskNorm}, ${((cls?.normRatio ?? 0) * 100).toFixed(0)}% of the median)`
            : `class ${target} has a reversed trigger of mask norm ${cls?.maskNorm} (${((cls?.normRatio ?? 0) * 100).toFixed(0)}% of the median, anomaly index ${cls?.anomalyIndex})`;
      results.push(
        result('SG001', `Backdoor detected: ${why}. Repair: ${repair}.`, `target-${target}`, {
          target,
          maskNorm: cls?.maskNorm,
          anomalyIndex: cls?.anomalyIndex,
          ...(universal !== null ? { universal } : {}),
          repairStatus: report.repair?.status ?? null,
        }),
      );
    }
  } else if (report.verdict === 'incomplete') {
    results.push(
      result('SG002', `Scan incomplete: ${report.reason ?? 'the budget ran out'}`, 'incomplete', {
        classesScanned: report.coverage?.classesScanned ?? 0,
        classesTotal: report.coverage?.classesTotal ?? 0,
      }),
    );
  } else if (report.verdict === 'error') {
    results.push(result('SG003', `Scan error: ${report.reason ?? 'unknown'}`, 'error', {}));
  } else if (report.verdict === 'unsupported') {
    results.push(result('SG004', `Unsupported model: ${report.reason ?? 'unknown'}`, 'unsupported', {}));
  }
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'shapguard',
            version: report.tool.version,
            informationUri: 'https://github.com/shapguard/shapguard',
            rules: RULES,
          },
        },
        results,
        properties: { verdict: report.verdict, repairStatus: report.repair?.status ?? null },
      },
    ],
  };
}

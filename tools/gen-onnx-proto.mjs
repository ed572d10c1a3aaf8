// `npm run gen:onnx`: regenerates src/core/model/onnx/onnx_pb.ts, the ONNX schema the loader decodes with
// (@bufbuild/protobuf), from the onnx.proto that Debian's python3-onnx ships (ONNX 1.12, IR version 8), with
// protoc (Debian's protobuf-compiler) and protoc-gen-es. The generated file is committed, so neither tool is
// needed to build or test; fields a newer ONNX adds are skipped as unknown fields, which loses nothing we read.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const proto = process.argv[2] ?? '/usr/lib/python3/dist-packages/onnx/onnx.proto';
const work = mkdtempSync(join(tmpdir(), 'onnx-proto-'));
cpSync(proto, join(work, 'onnx.proto'));
execFileSync(
  'protoc',
  [
    `--plugin=protoc-gen-es=${join(process.cwd(), 'node_modules/.bin/protoc-gen-es')}`,
    `--es_out=${work}`,
    '--es_opt=target=ts,import_extension=ts',
    'onnx.proto',
  ],
  { cwd: work, stdio: 'inherit' },
);
const out = 'src/core/model/onnx/onnx_pb.ts';
writeFileSync(out, readFileSync(join(work, 'onnx_pb.ts')));
console.log(`wrote ${out} from ${proto}`);

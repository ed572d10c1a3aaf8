import { readFileSync } from 'node:fs';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { TestProject } from 'vitest/node';
import { startMoto } from '../helpers/moto.ts';

// Runs in Node before the workerd tests: moto's S3 server on 127.0.0.1 with the sample model uploaded, for
// the Worker's S3 adapter (@aws-sdk/client-s3 inside workerd) to read and write.
export default async function setup(project: TestProject): Promise<() => void> {
  const moto = await startMoto();
  const client = new S3Client({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  await client.send(new CreateBucketCommand({ Bucket: 'models-s3' }));
  await client.send(
    new PutObjectCommand({
      Bucket: 'models-s3',
      Key: 'uploads/badnets.h5',
      Body: readFileSync('test/fixtures/keras/mnist-badnets.h5'),
      Tagging: 'owner=vision',
    }),
  );
  project.provide('s3Endpoint', moto.endpoint);
  return () => moto.stop();
}

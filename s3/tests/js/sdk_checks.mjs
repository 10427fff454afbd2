// The AWS SDK for JavaScript v3 against kelp's S3 gateway, with the SDK's defaults
// (CRC32 checksums on uploads, path style forced only because the endpoint is an
// address): put, get, a 100 MiB multipart Upload, ListObjectsV2 paging, a presigned
// GET. Usage: node sdk_checks.mjs <endpoint> <access key> <secret key>
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand,
  ListObjectsV2Command, HeadObjectCommand, DeleteObjectCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";

const [endpoint, accessKeyId, secretAccessKey] = process.argv.slice(2);
const s3 = new S3Client({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
});
const Bucket = "js-sdk-bucket";

await s3.send(new CreateBucketCommand({ Bucket }));

// Put and get, with the SDK's default checksum.
const small = "hello from the JavaScript SDK";
const put = await s3.send(new PutObjectCommand({ Bucket, Key: "hello.txt", Body: small }));
assert.ok(put.ETag, "PutObject returns an ETag");
const got = await s3.send(new GetObjectCommand({ Bucket, Key: "hello.txt" }));
assert.equal(await got.Body.transformToString(), small);

// A 100 MiB multipart upload with lib-storage (parts of 8 MiB, 4 at a time).
const size = 100 * 1024 * 1024;
const big = Buffer.alloc(size);
for (let i = 0; i < size; i += 4096) big.writeUInt32LE(i, i);
const upload = new Upload({
  client: s3,
  params: { Bucket, Key: "big.bin", Body: big },
  partSize: 8 * 1024 * 1024,
  queueSize: 4,
});
const done = await upload.done();
assert.match(done.ETag, /-13"?$/, `a 13-part ETag, got ${done.ETag}`);
const head = await s3.send(new HeadObjectCommand({ Bucket, Key: "big.bin" }));
assert.equal(head.ContentLength, size);
const back = await s3.send(new GetObjectCommand({ Bucket, Key: "big.bin" }));
const digest = createHash("md5").update(Buffer.from(await back.Body.transformToByteArray())).digest("hex");
assert.equal(digest, createHash("md5").update(big).digest("hex"), "the 100 MiB object reads back whole");

// ListObjectsV2 paging: 250 keys in pages of 100.
await Promise.all(Array.from({ length: 250 }, (_, i) =>
  s3.send(new PutObjectCommand({ Bucket, Key: `many/${String(i).padStart(3, "0")}`, Body: `${i}` }))));
const keys = [];
let token;
let pages = 0;
do {
  const page = await s3.send(new ListObjectsV2Command({
    Bucket, Prefix: "many/", MaxKeys: 100, ContinuationToken: token,
  }));
  pages += 1;
  keys.push(...(page.Contents ?? []).map((o) => o.Key));
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);
assert.equal(pages, 3);
assert.equal(keys.length, 250);
assert.deepEqual(keys, [...keys].sort());

// A presigned GET, fetched without the SDK.
const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: "hello.txt" }), { expiresIn: 600 });
const resp = await fetch(url);
assert.equal(resp.status, 200);
assert.equal(await resp.text(), small);

await s3.send(new DeleteObjectCommand({ Bucket, Key: "hello.txt" }));
await assert.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: "hello.txt" })));
console.log("js sdk: ok");

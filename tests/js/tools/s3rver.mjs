// Starts the npm `s3rver` (an S3-compatible server that checks AWS signatures, presigned URLs
// and their expiry) on a free loopback port, storing in S3RVER_DIR, with the bucket
// S3RVER_BUCKET. Prints one line `{"port":N}` once it listens; stops on SIGTERM or when its
// standard input closes (the Rust test that started it ended).
import S3rver from "s3rver";

const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory: process.env.S3RVER_DIR,
  configureBuckets: [{ name: process.env.S3RVER_BUCKET ?? "uploads" }],
});
const { port } = await server.run();
console.log(JSON.stringify({ port }));
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();

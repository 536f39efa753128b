// Starts s3rver (the npm package, pinned in package.json) for the e2e tests:
//   node s3rver_run.cjs DIRECTORY BUCKET
// listens on 127.0.0.1 with a free port, creates BUCKET, prints {"port": N}
// on stdout, and runs until stdin closes or SIGTERM.
'use strict';
const path = require('path');
const S3rver = require(path.join(process.env.NIC_NODE_MODULES || path.join(__dirname, '..', '..', 'node_modules'), 's3rver'));

async function main() {
  const [directory, bucket] = process.argv.slice(2);
  if (!directory || !bucket) {
    console.error('usage: node s3rver_run.cjs DIRECTORY BUCKET');
    process.exit(2);
  }
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const address = await server.run();
  process.stdout.write(JSON.stringify({ port: address.port }) + '\n');
  const stop = () => server.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((err) => {
  console.error('s3rver failed to start:', err);
  process.exit(1);
});

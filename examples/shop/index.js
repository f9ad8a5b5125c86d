// The walkthrough's shop: answers its version (and GREETING_SUFFIX) on PORT.
const http = require('node:http');
const { version } = require('./package.json');

const server = http.createServer((req, res) => {
  if (req.url === '/boom') {
    // For the walkthrough's crash section: the process dies, the dyno manager restarts it.
    console.error('boom: the shop fell over');
    res.end('boom\n');
    setTimeout(() => process.exit(1), 10);
    return;
  }
  console.log(`${req.method} ${req.url}`);
  res.end(`Hello from shop ${version}${process.env.GREETING_SUFFIX ?? ''}\n`);
});
server.listen(process.env.PORT, () => console.log(`shop ${version} listening on ${process.env.PORT}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

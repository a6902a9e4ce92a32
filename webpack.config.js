// The server bundle (`nest build`): Nest's defaults, except that the workspace packages of libs/
// are compiled in from their sources (through tsconfig's paths) instead of being required at run
// time, so dist/main.js does not need their built dist/ and the image ships no libs/.
const nodeExternals = require('webpack-node-externals');

module.exports = (options) => ({
  ...options,
  externals: [nodeExternals({ allowlist: [/^@switchboard\//] })],
});

#!/usr/bin/env node
// Compiles TestToken.sol with solc-js (pure WebAssembly/JS, bundled in the npm package, so it runs offline)
// and writes the ABI + bytecode artifact next to the source and into the Python package that deploys it.
//
//   npm ci                             # once, from package-lock.json
//   node contracts/build.mjs           # (or `npm run build:contracts`) rewrite the artifacts
//   node contracts/build.mjs --check   # exit 1 if the checked-in artifacts differ from the source
//
// The output is deterministic for a given solc version and settings, so the checked-in artifact can be
// verified by re-running this script and diffing.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const solc = require('solc')

const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..')
const sourceName = 'TestToken.sol'
const contractName = 'TestToken'

// Shanghai keeps the bytecode runnable on both anvil and py-evm (eth-tester) used by the unit tests.
const input = {
  language: 'Solidity',
  sources: { [sourceName]: { content: readFileSync(join(here, sourceName), 'utf8') } },
  settings: {
    evmVersion: 'shanghai',
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
}

const output = JSON.parse(solc.compile(JSON.stringify(input)))
const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
for (const e of output.errors ?? []) console.error(e.formattedMessage)
if (errors.length > 0) process.exit(1)

const compiled = output.contracts[sourceName][contractName]
const artifact = {
  contractName,
  sourceName: `contracts/${sourceName}`,
  compiler: { name: 'solc-js', version: solc.version(), settings: input.settings },
  abi: compiled.abi,
  bytecode: '0x' + compiled.evm.bytecode.object,
  deployedBytecode: '0x' + compiled.evm.deployedBytecode.object,
}
const text = JSON.stringify(artifact, null, 2) + '\n'

const targets = [
  join(here, `${contractName}.json`),
  join(repo, 'paygate_dev', 'chain', 'artifacts', `${contractName}.json`),
]
if (process.argv.includes('--check')) {
  const stale = targets.filter((t) => !existsSync(t) || readFileSync(t, 'utf8') !== text)
  for (const t of stale) console.error(`stale artifact: ${t} (run: node contracts/build.mjs)`)
  process.exit(stale.length > 0 ? 1 : 0)
}
for (const target of targets) {
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, text)
  console.log(`wrote ${target}`)
}

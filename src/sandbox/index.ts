export { type Fault, SandboxClock } from './harness.js';

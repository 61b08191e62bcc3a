// Filled in by the sandbox: `npx payrouter-sandbox` starts both stand-ins.
export {};

"""Developer tools: the embedded stack (`tools.stack`), the workload generator
(`tools.workload`) and the demo (`tools.demo`). Not part of the production image."""

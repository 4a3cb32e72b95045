"""Hardware layer: TFLite runtime, delegates, emulated accelerators, energy meters. Knows nothing of jobs."""

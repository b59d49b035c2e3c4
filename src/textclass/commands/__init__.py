"""The commands: `textclass <verb>` and the textclass-<verb> scripts, one module a verb."""

"""The AgentOptimizer: LLM client, prompt, actions, state machine, replay check."""

"""`edgeoss serve`: the local server, cut by concern.

- host.py: the loaded model, its admission queue and its keep-alive;
- generation.py: one harmony generation on the batched engine, as async events;
- openai_chat.py, responses.py, ollama.py: the three API families;
- app.py: the FastAPI application, its safety middleware and its errors;
- metrics.py: Prometheus counters; web/: the built-in chat page.
"""

"""A minimal OpenAI-compatible /v1/embeddings server over the bundled ONNX model, for tests.

python tests/embed_server.py PORT
"""

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from rag.embeddings import OnnxMiniLMEmbedding

app = FastAPI()
model = OnnxMiniLMEmbedding()
calls = {"n": 0}


class EmbeddingRequest(BaseModel):
    model: str
    input: str | list[str]
    encoding_format: str | None = None


@app.post("/v1/embeddings")
def embeddings(req: EmbeddingRequest) -> dict:
    texts = [req.input] if isinstance(req.input, str) else req.input
    calls["n"] += 1
    vectors = model.embed(texts)
    return {
        "object": "list",
        "model": req.model,
        "data": [
            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

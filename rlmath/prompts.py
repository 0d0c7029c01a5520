"""Turn a problem into prompt token ids with the model's own chat template, once per problem.

Tokenising once and handing ids to the sampler avoids re-tokenising each of the k samples and keeps
trainer and sampler on exactly the same prompt tokens (the logprob probe depends on that).
"""

from __future__ import annotations

from functools import lru_cache

from rlmath.config import Config


def chat_messages(question: str, config: Config) -> list[dict[str, str]]:
    messages = []
    if config.model.system_prompt:
        messages.append({"role": "system", "content": config.model.system_prompt})
    messages.append({"role": "user", "content": config.prompt.template.format(question=question)})
    return messages


class PromptEncoder:
    """Caches prompt ids per question: a curriculum revisits the same problems many times."""

    def __init__(self, tokenizer, config: Config) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.encode = lru_cache(maxsize=100_000)(self._encode)

    def _encode(self, question: str) -> tuple[int, ...]:
        ids = self.tokenizer.apply_chat_template(chat_messages(question, self.config), add_generation_prompt=True,
                                                 tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return tuple(ids)

    def __call__(self, questions: list[str]) -> list[list[int]]:
        return [list(self.encode(q)) for q in questions]

"""Write a saved LLaVA checkpoint in the layout every loader reads.

transformers 5.x ``save_pretrained`` writes the CLIP tower's weights as
``vision_tower.*`` and a 5.x tokenizer config (``TokenizersBackend``, a list of
extra special tokens). The checkpoints on the hub (``llava-hf/llava-1.5-7b-hf``)
use ``vision_tower.vision_model.*``, and that is what transformers 4.57 to 5.x
and vLLM load. :func:`make_portable` rewrites a directory in place to that
layout, so one bundled checkpoint loads under every supported release and vLLM.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

TOWER, HUB_TOWER = "vision_tower.", "vision_tower.vision_model."
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: {{ m['content'] }} "
    "{% endif %}{% endfor %}ASSISTANT:"
)
"""The LLaVA-1.5 prompt (:func:`monitor.reference_vlm.build.build_prompt`) as a chat
template: an OpenAI-style server (``vllm serve``) puts ``<image>\n`` before the text."""


def hub_key(key: str) -> str:
    """The hub name of one state-dict key.

    >>> hub_key("vision_tower.encoder.layers.0.mlp.fc1.weight")
    'vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight'
    >>> hub_key("vision_tower.vision_model.post_layernorm.bias")
    'vision_tower.vision_model.post_layernorm.bias'
    """
    if key.startswith(TOWER) and not key.startswith(HUB_TOWER):
        return HUB_TOWER + key[len(TOWER) :]
    return key


def make_portable(directory: str | Path) -> None:
    """Rewrite weight keys and ``tokenizer_config.json`` in place; add a chat template.

    Parameters
    ----------
    directory : str or Path
        Written by ``save_pretrained`` (model and processor).

    Raises
    ------
    FileNotFoundError
        ``model.safetensors`` or ``tokenizer_config.json`` is missing.
    """
    directory = Path(directory)
    weights = directory / "model.safetensors"
    state = load_file(weights)
    save_file({hub_key(k): v for k, v in state.items()}, weights, metadata={"format": "pt"})
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # TokenizersBackend is 5.x only
    if not config.get("extra_special_tokens"):
        config["extra_special_tokens"] = {}  # 4.57 wants a mapping
    config["model_input_names"] = ["input_ids", "attention_mask"]  # no token_type_ids
    path.write_text(json.dumps(config, indent=2) + "\n")
    (directory / "chat_template.jinja").write_text(CHAT_TEMPLATE + "\n")

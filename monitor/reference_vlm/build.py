"""Tokenizer, image processor, processor and config of the reference VLM.

Everything is built offline from the real transformers classes, so the saved
checkpoint loads back with ``AutoProcessor`` / ``AutoModelForImageTextToText``
exactly as ``llava-hf/llava-1.5-7b-hf`` does.

Prompt format (LLaVA-1.5 style)::

    "USER: <image>\\nIs there a red circle in the image? ASSISTANT:"

The tokenizer lower-cases, splits on whitespace and punctuation and prepends
``<s>``; ``LlavaProcessor`` expands ``<image>`` into ``N_IMAGE_TOKENS`` (16)
copies. The prompt is 31 tokens; the last one is ``":"`` after ``assistant``.
The target is ``"yes"`` or ``"no"`` followed by ``</s>``.
"""

from __future__ import annotations

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from monitor.reference_vlm.shapes import COLOURS, IMAGE_SIZE, SHAPES

PATCH_SIZE = 8
N_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # 16: the CLS token is dropped ("default")
IMAGE_TOKEN = "<image>"
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, IMAGE_TOKEN)
WORDS = (
    ("user", ":", "assistant", "is", "there", "a", "in", "the", "image", "?")
    + tuple(COLOURS)
    + SHAPES
    + ("yes", "no", "describe", "and", ".")
)
PROMPT_TEMPLATE = "USER: " + IMAGE_TOKEN + "\n{question} ASSISTANT:"


def build_prompt(question: str) -> str:
    """Wrap a question in the LLaVA-1.5 style prompt holding one ``<image>`` token.

    Parameters
    ----------
    question : str
        E.g. ``"Is there a red circle in the image?"``.

    Returns
    -------
    str
        ``"USER: <image>\\n{question} ASSISTANT:"``.

    Raises
    ------
    ValueError
        If ``question`` is empty or already holds ``<image>``.

    Examples
    --------
    >>> build_prompt("Is there a red circle in the image?")
    'USER: <image>\\nIs there a red circle in the image? ASSISTANT:'
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    if IMAGE_TOKEN in question:
        raise ValueError(f"question must not contain {IMAGE_TOKEN!r}: {question!r}")
    return PROMPT_TEMPLATE.format(question=question.strip())


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the task's closed vocabulary.

    Returns
    -------
    PreTrainedTokenizerFast
        Lower-cases, splits on whitespace/punctuation, prepends ``<s>``, pads
        on the left (for batched generation), maps unknown words to ``<unk>``.
        ``tokenizer.image_token`` is ``"<image>"``.
    """
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.add_special_tokens(list(SPECIAL_TOKENS))
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        padding_side="left",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=64,
    )


def build_image_processor() -> object:
    """CLIP image processor for 32x32 RGB images (PIL backend: no torchvision here).

    Maps uint8 pixels to ``(x / 255 - 0.5) / 0.5``, i.e. [-1, 1]; other sizes
    are resized (shortest edge) and centre-cropped to 32x32. Imported here, not at
    module level: the PIL-backend class exists from transformers 5.x's later
    releases, and loading the saved checkpoint needs none of this.
    """
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        do_resize=True,
        size={"shortest_edge": IMAGE_SIZE},
        do_center_crop=True,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_convert_rgb=True,
    )


def build_processor() -> LlavaProcessor:
    """``LlavaProcessor`` joining :func:`build_tokenizer` and :func:`build_image_processor`."""
    return LlavaProcessor(
        image_processor=build_image_processor(),
        tokenizer=build_tokenizer(),
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by "default"
        image_token=IMAGE_TOKEN,
    )


def build_config(
    tokenizer: PreTrainedTokenizerFast,
    text_hidden: int = 128,
    text_layers: int = 4,
    vision_hidden: int = 96,
    vision_layers: int = 3,
    initializer_range: float = 0.08,
) -> LlavaConfig:
    """Tiny ``LlavaConfig``: CLIP vision 32x32 px, patch 8, and a Llama decoder.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerFast
        From :func:`build_tokenizer`; gives vocabulary size and special ids.
    text_hidden, text_layers : int
        Llama width and number of decoder layers (4 heads; MLP 3x width).
    vision_hidden, vision_layers : int
        CLIP vision width and number of encoder layers (4 heads; MLP 4x width).
    initializer_range : float
        Std of the normal weight init of both towers. The usual 0.02 left the
        model at chance for thousands of steps on this task (the question-image
        matching sits on a saddle); 0.08 escaped within a few hundred.

    Returns
    -------
    LlavaConfig
        ``vision_feature_layer=-1`` (the last CLIP layer; the tower is tiny),
        ``vision_feature_select_strategy="default"`` (CLS dropped: 16 tokens).
    """
    vision = CLIPVisionConfig(
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        num_channels=3,
        hidden_size=vision_hidden,
        intermediate_size=4 * vision_hidden,
        num_hidden_layers=vision_layers,
        num_attention_heads=4,
        projection_dim=vision_hidden,
        initializer_range=initializer_range,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=text_hidden,
        intermediate_size=3 * text_hidden,
        num_hidden_layers=text_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=initializer_range,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=N_IMAGE_TOKENS,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )

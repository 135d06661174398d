"""The paper's 21 prompt templates (its appendix B; DESIGN §2.1), in their order.

A module of its own, so that code that only needs the templates (provenance, the config checks)
does not depend on the attack's code.
"""

#: The 21 prompt templates of the paper's appendix B, in the paper's order.
PAPER_TEMPLATES: tuple[str, ...] = (
    "{}",
    "an image of {}",
    "a photo of {}",
    "{} on a photo",
    "a photo of a person named {}",
    "a person named {}",
    "a man named {}",
    "a woman named {}",
    "the name of the person is {}",
    "a photo of a person with the name {}",
    "{} at a gala",
    "a photo of the celebrity {}",
    "actor {}",
    "actress {}",
    "a colored photo of {}",
    "a black and white photo of {}",
    "a cool photo of {}",
    "a cropped photo of {}",
    "a cropped image of {}",
    "{} in a suit",
    "{} in a dress",
)


def config_templates(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """The prompt templates of ``attack.templates``: ``"paper"`` for the paper's 21, or a list."""
    return list(PAPER_TEMPLATES) if value == "paper" else list(value)

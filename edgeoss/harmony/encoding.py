"""The o200k_harmony encoding, loaded offline from the packaged vocabulary.

openai-harmony downloads o200k_base.tiktoken on first use unless
TIKTOKEN_ENCODINGS_BASE names a folder that holds it. We point it at the
package's own verified copy, so loading never touches the network.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import TYPE_CHECKING

from edgeoss import constants, resources
from edgeoss.errors import DataIntegrityError

if TYPE_CHECKING:
    import openai_harmony

_env_lock = threading.Lock()
_load_lock = threading.Lock()


def encoding() -> openai_harmony.HarmonyEncoding:
    """The o200k_harmony encoding (HARMONY_GPT_OSS), loaded fully offline, once."""
    with _load_lock:  # preload() may be loading it on another thread
        return _load()


def preload() -> None:
    """Start loading the encoding on a thread (a fifth of a second), so that a
    command loading a model has it ready for the prompt; a failure here is
    raised again by the first real use."""

    def load() -> None:
        with contextlib.suppress(Exception):
            encoding()

    threading.Thread(target=load, name="harmony-preload", daemon=True).start()


@functools.cache
def _load() -> openai_harmony.HarmonyEncoding:
    # Imported here, not at the top: openai-harmony and pydantic take a tenth of a
    # second to import, which preload() moves beside the model's load.
    import openai_harmony

    folder = str(resources.vocab_path().parent)
    with _env_lock:
        # The variable is process-wide; set it only for the load and put back
        # whatever the user had.
        previous = os.environ.get(constants.ENV_TIKTOKEN_ENCODINGS_BASE)
        os.environ[constants.ENV_TIKTOKEN_ENCODINGS_BASE] = folder
        try:
            return openai_harmony.load_harmony_encoding(openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS)
        except openai_harmony.HarmonyError as exc:
            raise DataIntegrityError(
                f"openai-harmony could not load the packaged vocabulary from {folder}: {exc}",
                hint="reinstall edgeoss; the vocabulary ships with it",
            ) from exc
        finally:
            if previous is None:
                os.environ.pop(constants.ENV_TIKTOKEN_ENCODINGS_BASE, None)
            else:
                os.environ[constants.ENV_TIKTOKEN_ENCODINGS_BASE] = previous

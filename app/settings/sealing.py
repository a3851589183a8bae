"""The operator's key that seals secrets before they reach Kafka."""

from __future__ import annotations

from pydantic import Field, SecretStr

from app.settings.base import SettingsBase


class SealingSettings(SettingsBase):
    """The operator key (or its file)."""

    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "The operator's key that seals secrets before they reach Kafka (webhook signing "
            "secrets, in the control topic and the keys changelog): 32 bytes base64url, from "
            "`ocrstream secret-key`; the same on every worker and for the CLI. Rotating: "
            "`new,old` (the first seals, each opens). A worker refuses to start without it, "
            "or when it does not open what the keys changelog holds."
        ),
    )
    secret_key_file: str = Field(
        default="",
        description=(
            "A file holding `OCRSTREAM_SECRET_KEY` instead (a mounted secret); read when that "
            "is unset. `ocrstream run` on its own broker keeps one in the broker's directory."
        ),
    )

"""What every group of settings shares: read from ``OCRSTREAM_*`` variables, frozen."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsBase(BaseSettings):
    """Settings read from the environment, prefix ``OCRSTREAM_``, never changed once read."""

    model_config = SettingsConfigDict(env_prefix="OCRSTREAM_", frozen=True, extra="ignore")

"""The shared engines of a worker process.

One recognizer and one voice per locale, one set of pools for every call; each locale is
loaded on its first call, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from voiceagent.asr.base import Recognizer
from voiceagent.call.session import Pools
from voiceagent.dialog.model import Dialplan
from voiceagent.tts.cache import PromptCache, template_prompt_parts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocaleEngines:
    """What a call in one locale needs: ears and a voice."""

    recognizer: Recognizer
    voice: PromptCache


@dataclass
class Engines:
    """Every engine of the process, loaded lazily per locale and shared by all calls."""

    asr: str
    """``whisper`` (understands es/pt/en everywhere) or ``vosk`` (a fetched model per locale)."""
    models_dir: Path
    cache_dir: Path
    pools: Pools = field(default_factory=Pools.create)
    _loaded: dict[str, LocaleEngines] = field(default_factory=dict)
    _loading: dict[str, asyncio.Future[LocaleEngines]] = field(default_factory=dict)
    _prerendered: set[str] = field(default_factory=set)
    _rendering: set[asyncio.Future[int]] = field(default_factory=set)

    async def for_locale(self, locale: str) -> LocaleEngines:
        """The locale's engines; the first caller loads them on the io pool, others wait."""
        if locale in self._loaded:
            return self._loaded[locale]
        if locale not in self._loading:
            loop = asyncio.get_running_loop()
            self._loading[locale] = loop.run_in_executor(self.pools.io, self._load, locale)
        try:
            engines = await self._loading[locale]
        except BaseException:
            self._loading.pop(locale, None)
            raise
        self._loaded[locale] = engines
        return engines

    async def prerender(self, plan: Dialplan, voice: PromptCache) -> None:
        """Render a dialplan's template text once per process, in the background.

        The first call does not wait for it (it takes ~30 s for a cold cache on two cores):
        the render is one job on one tts thread, and calls synthesize what they need on the
        other meanwhile. Cheap when the audio is already on disk.
        """
        key = f"{voice.name}:{plan.dialplan.id}:{plan.dialplan.version}"
        if key in self._prerendered:
            return
        self._prerendered.add(key)
        prompts = [template_prompt_parts(plan.prompt(p).text) for p in plan.prompts]
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self.pools.tts, voice.prerender_parts, prompts, False)
        self._rendering.add(job)
        job.add_done_callback(lambda done: self._rendered(plan.dialplan.id, done))

    def _rendered(self, plan_id: str, job: asyncio.Future[int]) -> None:
        self._rendering.discard(job)
        if job.cancelled():
            return
        if job.exception() is not None:
            log.error("dialplan %s: prompts not prerendered: %s", plan_id, job.exception())
        else:
            log.info("dialplan %s: %d prompt fragments rendered", plan_id, job.result())

    def _load(self, locale: str) -> LocaleEngines:
        from voiceagent.call.simulate import load_engines

        loaded = load_engines(locale, self.asr, self.models_dir, self.cache_dir, self.pools)
        return LocaleEngines(recognizer=loaded.recognizer, voice=loaded.voice)

    def shutdown(self) -> None:
        """Stop the pools (calls must have ended)."""
        self.pools.shutdown()

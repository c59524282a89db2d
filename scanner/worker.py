"""The decode worker: a thread with its own DecodePipeline, fed by the capture queue.

Decoding is CPU-bound and never runs on the event loop. The worker hands on only what
matters: frames in which codes were found, and the end of a finite source.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import cv2

from scanner.capture import END, CapturedFrame, FrameQueue
from scanner.decode import Decoded, DecodePipeline

logger = logging.getLogger(__name__)

OnCodes = Callable[[CapturedFrame, list[Decoded]], None]


class DecodeWorker:
    def __init__(
        self,
        frames: FrameQueue,
        make_pipeline: Callable[[], DecodePipeline],
        *,
        on_codes: OnCodes,
        on_end: Callable[[], None],
        on_frame: OnCodes | None = None,  # every decoded frame (the screen's preview)
    ) -> None:
        self.frames = frames
        self.pipeline = make_pipeline()
        self.on_codes = on_codes
        self.on_end = on_end
        self.on_frame = on_frame
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decode", daemon=True)

    @property
    def attempts(self) -> int:
        return self.pipeline.stats.attempts

    @property
    def successes(self) -> int:
        return self.pipeline.stats.successes

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.frames.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is END:
                self.on_end()
                return
            try:
                codes = self.pipeline.decode_frame(item.image)
            except (ValueError, cv2.error) as e:  # a frame of an unexpected shape
                logger.warning("cannot decode a frame: %s", e)
                continue
            if self.on_frame is not None:
                self.on_frame(item, codes)
            if codes:
                self.on_codes(item, codes)

"""The decode worker: a thread with its own DecodePipeline, fed by the capture queue.

Decoding is CPU-bound and never runs on the event loop. The worker hands on only what
matters: frames in which codes were found, and the end of a finite source. Codes the
first passes read are handed on at once; those the fallbacks find after, when they do. When it falls
behind, it decodes the sharpest of the frames waiting (motion blur) and drops the rest;
when a code is there but only blur keeps it from being read, it raises `hold_still`.
A code seen but unread in several frames in a row is read from their average.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import cv2

from scanner.capture import END, CapturedFrame, FrameQueue
from scanner.combine import FrameStack
from scanner.decode import Decoded, DecodePipeline, to_gray
from scanner.motion import Steadiness, sharpest, sharpness

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
        self._stack = FrameStack()
        self._combined = make_pipeline()  # its own: the camera's frames keep their stats
        self.on_codes = on_codes
        self.on_end = on_end
        self.on_frame = on_frame
        self._steadiness = Steadiness()
        self.hold_still = False  # blur is the only problem: ask the person to hold still
        self.skipped = 0  # blurrier frames passed over for a sharper one waiting with them
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
            waiting, ended = self._waiting()
            self._decode(item, waiting)
            if ended:
                self.on_end()
                return

    def _waiting(self) -> tuple[list[CapturedFrame], bool]:
        """The other frames already queued (the decoder fell behind), and whether the
        source ended after them."""
        frames: list[CapturedFrame] = []
        while True:
            try:
                item = self.frames.get(timeout=0)
            except queue.Empty:
                return frames, False
            if item is END:
                return frames, True
            frames.append(item)

    def _decode(self, item: CapturedFrame, waiting: list[CapturedFrame]) -> None:
        try:
            candidates = [item, *waiting]
            scores = [sharpness(f.image) for f in candidates]
            best = sharpest(scores)  # the others are dropped, and counted
            item = candidates[best]
            self.skipped += len(waiting)
            early: list[Decoded] = []
            chosen = item

            def hand_on(found: list[Decoded]) -> None:  # the first passes' codes, at once
                early.extend(found)
                self.on_codes(replace(chosen, decoded=time.monotonic()), found)

            codes = self.pipeline.decode_frame(item.image, early=hand_on)
            codes = self._or_combined(item, codes)
        except (ValueError, cv2.error) as e:  # a frame of an unexpected shape
            logger.warning("cannot decode a frame: %s", e)
            return
        self.hold_still = self._steadiness.feed(
            scores[best], code_seen=self.pipeline.code_seen, code_read=bool(codes)
        )
        if self.on_frame is not None:
            self.on_frame(item, codes)
        later = [c for c in codes if c not in early]  # found by the fallbacks
        if later:
            self.on_codes(replace(item, decoded=time.monotonic()), later)

    def _or_combined(self, item: CapturedFrame, codes: list[Decoded]) -> list[Decoded]:
        """The frame's codes; when none, and a code has been seen but unread in the last
        frames in a row, what their average reads (scanner/combine.py)."""
        if codes or not self.pipeline.unread:
            self._stack.reset()
            return codes
        view = self._stack.add(to_gray(item.image), self.pipeline.unread[0])
        if view is None:
            return []
        return [view.to_frame(c, "combined") for c in self._combined.decode_frame(view.image)]

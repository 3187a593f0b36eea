"""The shared ``main`` of the node executables: the nodes of one process on one executor, stopped in an order of
our own.

rclpy's own signal handler shuts the context down the moment SIGINT arrives, while the nodes' worker threads may
still be publishing or logging: "publisher's context is invalid", "Failed to publish log message to rosout". So it
is not installed here. SIGINT (Ctrl-C, and what `ros2 launch` sends first) and SIGTERM (launch's second step,
`kill`) raise KeyboardInterrupt in the main thread, which then stops, in this order: the executor (no callback
runs any more), each node with its worker thread (destroy_node joins the worker before the node goes), and last
the context. A shutdown of the context from elsewhere in the process ends the spin and takes the same path, and so
does a node that ends its process itself when its work is done (see run_nodes).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.resources import map_large_blocks_separately

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopSignal:
    """Raises KeyboardInterrupt for SIGINT and SIGTERM, and remembers that one came: a library that catches it
    while a node is being built (onnxruntime's import turns it into ImportError) still means a stop."""

    def __init__(self):
        self.received = False

    def __call__(self, number, frame):
        self.received = True
        raise KeyboardInterrupt


class _Spinner:
    """The executor spinning on a thread of its own, so that the main thread waits where a signal reaches it at
    once (a wait in rcl would hold it back until the next message or timer).

    Single-threaded, and stopped by its own loop before it is shut down: the callbacks only queue work for the
    nodes' workers; rclpy's MultiThreadedExecutor took only about 150 audio messages a second while decoding held
    the GIL, so a 4x burst overflowed the audio history (ros/topics.py), and its shutdown destroys its guard
    condition while a callback may still be running on its pool ("cannot use Destroyable because destruction was
    requested")."""

    def __init__(self):
        self.executor = SingleThreadedExecutor()
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._stop = Future()
        self.thread = threading.Thread(target=self._spin, name="executor", daemon=True)

    def _spin(self) -> None:
        try:
            self.executor.spin_until_future_complete(self._stop)
        except ExternalShutdownException:
            pass  # the context was shut down from elsewhere in the process: a normal stop
        except BaseException as error:  # a callback raised: re-raised in the main thread
            self.error = error
        finally:
            self.ended.set()

    def end(self, _finished: Future | None = None) -> None:
        """End the spin after the callback in progress (from any thread; a done callback of a node's ``finished``)."""
        if not self._stop.done():
            self._stop.set_result(None)  # wakes the executor

    def end_when_finished(self, nodes) -> None:
        """End the spin when a node's ``finished`` future (if it has one) completes."""
        for node in nodes:
            finished = getattr(node, "finished", None)
            if not isinstance(finished, Future):
                continue
            if finished.done():
                self.end()
            else:  # end() runs on the thread that completes it: the executor's, in a node's callback
                finished.add_done_callback(self.end)

    def stop(self) -> None:
        """End the spin after the callback in progress, then shut the executor down."""
        self.end()
        if self.thread.is_alive():
            self.thread.join()
        self.executor.shutdown()


@contextlib.contextmanager
def initialised(args, **options) -> Iterator[None]:
    """rclpy.init(args, **options) until the block ends, then the context's shutdown: what `with rclpy.init()` does
    from Kilted on; Jazzy's rclpy.init returns None."""
    rclpy.init(args=args, **options)
    try:
        yield
    finally:
        rclpy.try_shutdown()


def run_nodes(args, node_classes) -> int:
    """Create one node of each class, spin them until a stop signal or an external shutdown, destroy them; 2 on a
    configuration error the user can fix (missing model file, invalid parameter), told in one line without a
    traceback.

    A node whose work ends (wav_source once it has played its files) has a ``finished`` attribute, an rclpy Future
    it completes then: that ends the spin as a stop signal would, the nodes go in the same order, and the exit
    status is 0. Its destroy_node may finish the work off (wav_source waits for its last chunks to be delivered)."""
    program = sys.argv[0].rsplit("/", 1)[-1]
    heap_note = map_large_blocks_separately()  # before the models load: their activations are what it is for
    if heap_note is not None:
        print(f"{program}: note: freed activations stay resident ({heap_note})", file=sys.stderr)
    previous_handlers = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    stop_signal = _StopSignal()
    for number in STOP_SIGNALS:
        signal.signal(number, stop_signal)
    try:
        with initialised(args, signal_handler_options=SignalHandlerOptions.NO):
            nodes = []
            spinner = _Spinner()
            try:
                for node_class in node_classes:
                    nodes.append(node_class())
                    spinner.executor.add_node(nodes[-1])
                spinner.end_when_finished(nodes)
                spinner.thread.start()
                spinner.ended.wait()
                if spinner.error is not None:
                    raise spinner.error
            except (HailoWhisperError, InvalidParameterValueException, InvalidParameterTypeException) as error:
                # The last two: rclpy refusing a parameter given at start-up (out of its range, of the wrong type).
                print(f"{program}: error: {error}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                pass  # Ctrl-C or SIGTERM, also while a node is being built (the model loads): a normal stop
            except Exception:
                if not stop_signal.received:
                    raise
            finally:
                # A second signal would break the stop off halfway, with the errors it exists to avoid. The stop
                # waits only for the callback and the worker steps in progress, and SIGKILL (launch's last resort)
                # still works.
                for number in STOP_SIGNALS:
                    signal.signal(number, signal.SIG_IGN)
                spinner.stop()
                for node in nodes:
                    node.destroy_node()
    except KeyboardInterrupt:
        pass  # the signal came while rclpy.init was setting the context up
    finally:
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
    return 0

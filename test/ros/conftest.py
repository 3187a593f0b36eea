"""ROS 2 tests run on real DDS confined to this machine, in a domain of their own per test run; the helpers that
several of them share."""

import sys
from pathlib import Path

import pytest

from hailo_whisper_ros.evaluation.ros_session import NodeProcess, confine_to_this_machine, local_context

BASE_PARAMETERS = Path(__file__).resolve().parents[2] / "config" / "speech_recognition.yaml"
READY = "ready: encoder"  # the recognizer's line once its model is loaded and warmed up

# Before any rclpy.init() in this process, and inherited by every node process a test starts: DDS on this machine
# only, in a random domain per test run (unless ROS_DOMAIN_ID is set), so that two runs do not hear each other.
confine_to_this_machine()
# The harness module sits beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def ros_context():
    """An rclpy context of the test module's own, shut down after its last test."""
    with local_context() as context:
        yield context


@pytest.fixture(scope="module")
def speech_recognition(request):
    """The composed speech_recognition process with config/speech_recognition.yaml and the test module's
    SPEECH_RECOGNITION_ARGS (more --ros-args, if it has any), once its model is ready; it must exit cleanly after
    the module's last test."""
    extra = getattr(request.module, "SPEECH_RECOGNITION_ARGS", ())
    process = NodeProcess("speech_recognition", "--params-file", str(BASE_PARAMETERS), *extra)
    assert process.wait_for_output(READY, timeout=120), process.log
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture(scope="session")
def set_parameter():
    """What `ros2 param set` does: set_parameter(listener, node, name, value) -> (successful, reason), a
    SetParameters call on the node's parameter service through the listener's node. ``value``: a bool, int, float,
    str, list of str, or a ParameterValue as sent."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    def set_one(listener, node: str, name: str, value) -> tuple[bool, str]:
        client = listener.node.create_client(SetParameters, f"/{node}/set_parameters")
        try:
            assert client.wait_for_service(timeout_sec=10), f"no parameter service on /{node}"
            if isinstance(value, ParameterValue):
                parameter_value = value
            elif isinstance(value, list):
                parameter_value = ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=value)
            elif isinstance(value, bool):
                parameter_value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
            elif isinstance(value, int):
                parameter_value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
            elif isinstance(value, float):
                parameter_value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
            else:
                parameter_value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
            request = SetParameters.Request(parameters=[Parameter(name=name, value=parameter_value)])
            future = client.call_async(request)
            assert listener.wait_for(future.done, timeout=10), f"/{node}/set_parameters did not answer"
            result = future.result().results[0]
            return result.successful, result.reason
        finally:
            listener.node.destroy_client(client)

    return set_one


@pytest.fixture(scope="session")
def get_parameter():
    """What `ros2 param get` does: get_parameter(listener, node, name) -> the value (bool, int, float or str), a
    GetParameters call on the node's parameter service through the listener's node."""
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    def get_one(listener, node: str, name: str):
        client = listener.node.create_client(GetParameters, f"/{node}/get_parameters")
        try:
            assert client.wait_for_service(timeout_sec=10), f"no parameter service on /{node}"
            future = client.call_async(GetParameters.Request(names=[name]))
            assert listener.wait_for(future.done, timeout=10), f"/{node}/get_parameters did not answer"
            return parameter_value_to_python(future.result().values[0])
        finally:
            listener.node.destroy_client(client)

    return get_one

"""The exception hierarchy is generated from the error-code table and stays in step with it."""

from __future__ import annotations

import builtins
import inspect

import pytest

import rapidmq
from rapidmq import _codegen, _native, errors


def test_every_code_in_the_table_has_its_own_class_in_its_range():
    table = _native.error_codes()
    assert len(table) >= 20
    for code, name, retriable, _grpc, _http in table:
        cls = errors.BY_CODE[code]
        assert cls.code == code and cls.name == name and cls.retriable == retriable
        assert getattr(rapidmq, cls.__name__) is cls, f"{cls.__name__} not exported"
        range_class = errors.RANGES[code // 1000][0]
        assert issubclass(cls, range_class) and issubclass(cls, rapidmq.RapidMQError)
    assert set(errors.BY_CODE) == {row[0] for row in table}


def test_the_generated_classes_match_the_table_of_the_native_module():
    """Drift: `python -m rapidmq._codegen` would write exactly the committed file."""
    assert _codegen.TARGET.read_text() == _codegen.render(_native.error_codes())


def test_class_names_follow_the_code_names():
    assert rapidmq.TopicNotFoundError.name == "TOPIC_NOT_FOUND"
    assert rapidmq.StorageError.name == "STORAGE_ERROR"
    assert issubclass(rapidmq.TimeoutError, builtins.TimeoutError)
    assert issubclass(rapidmq.TimeoutError, rapidmq.BrokerError)


def test_unknown_codes_fall_back_to_their_range_class():
    err = errors._from_native(2999, "broker", "future code", False)
    assert type(err) is rapidmq.TopicError and err.code == 2999


def test_core_error_kinds_refine_invalid_argument():
    assert type(errors._from_native(1001, "unsupported", "x", False)) is rapidmq.UnsupportedError
    assert type(errors._from_native(1001, "closed", "x", False)) is rapidmq.ClosedError
    assert type(errors._from_native(1001, "forked", "x", False)) is rapidmq.ForkError
    assert issubclass(rapidmq.ForkError, rapidmq.InvalidArgumentError)


def test_errors_keep_code_and_retriable_flag_through_pickling():
    import pickle

    err = errors._from_native(5003, "broker", "shutting down", True)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is rapidmq.UnavailableError
    assert (again.code, again.retriable, str(again)) == (5003, True, str(err))


def test_broker_errors_arrive_as_their_subclass_with_code(client):
    admin = client.admin()
    with pytest.raises(rapidmq.TopicNotFoundError) as err:
        admin.delete_topic("never-created")
    assert err.value.code == 2001
    assert "TOPIC_NOT_FOUND (2001)" in str(err.value)
    assert err.value.message  # detail text (not API)


def test_public_classes_have_docstrings():
    for name in ["Client", "Producer", "Consumer", "Admin", "ProducerConfig", "ConsumerConfig"]:
        assert inspect.getdoc(getattr(rapidmq, name)), name
    for name in ["Client", "Producer", "Consumer", "Admin"]:
        assert inspect.getdoc(getattr(rapidmq.aio, name)), name

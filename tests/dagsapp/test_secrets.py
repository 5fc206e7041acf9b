"""The secret rule (dagsapp/secrets.py), without a database: names, mask_secret, redaction."""
from __future__ import annotations

import pytest

from dagsapp import sdk
from dagsapp.secrets import (
    MASK,
    SECRET_NAME,
    SecretRegistry,
    current_secrets,
    mask_secret,
    mask_secrets,
    redact,
    redact_value,
    secret_kwargs_text,
    secrets_scope,
)


class SecretNameTests:
    @pytest.mark.parametrize("name", ["password", "db_passwd", "SECRET", "token", "apikey", "api_key", "API_KEY_2", "private_key", "credentials"])
    def test_it_recognises_secret_looking_names(self, name: str) -> None:
        assert SECRET_NAME.search(name)

    @pytest.mark.parametrize("name", ["host", "key", "name", "count", "keyboard"])
    def test_it_leaves_ordinary_names_alone(self, name: str) -> None:
        assert not SECRET_NAME.search(name)

    def test_it_masks_nested_secret_keys_and_collects_their_text(self) -> None:
        found: set[str] = set()
        shown = mask_secrets({"host": "db1", "options": {"token": ["tok-1", "tok-2"], "retries": 3}, "password": ""}, found)
        assert shown == {"host": "db1", "options": {"token": MASK, "retries": 3}, "password": ""}
        assert found == {"tok-1", "tok-2"}

    def test_it_ignores_values_too_short_to_redact(self) -> None:
        assert secret_kwargs_text({"api_key": "ab", "token": True, "secret": 12345}) == {"12345"}


class MaskSecretTests:
    def test_it_is_exported_by_the_sdk(self) -> None:
        assert sdk.mask_secret is mask_secret

    def test_it_does_nothing_outside_a_try(self) -> None:
        mask_secret("nobody-listens")
        assert current_secrets() == set()

    def test_it_registers_for_the_current_try_and_tells_the_log_at_once(self) -> None:
        told: list[set[str]] = []
        with secrets_scope(SecretRegistry(on_add=told.append)) as registry:
            mask_secret("sk-123456")
            mask_secret({"a": ["nested-1", 42], "b": None})
            mask_secret("sk-123456")  # known already: not told twice
            assert current_secrets() == {"sk-123456", "nested-1"}
        assert registry.values == {"sk-123456", "nested-1"}
        assert told == [{"sk-123456"}, {"nested-1"}]
        assert current_secrets() == set()


class RedactTests:
    def test_it_hides_the_longest_secret_whole(self) -> None:
        assert redact("key abc and abcdef", {"abc", "abcdef"}) == "key *** and ***"

    def test_it_redacts_every_string_of_a_json_value_and_says_whether_it_did(self) -> None:
        value = {"auth": "Bearer sk-999", "sk-999": [1, "x", 123456], "n": 7}
        assert redact_value(value, {"sk-999", "123456"}) == ({"auth": "Bearer ***", "***": [1, "x", MASK], "n": 7}, True)
        assert redact_value(value, {"elsewhere"}) == (value, False)
        assert redact_value(value, set()) == (value, False)

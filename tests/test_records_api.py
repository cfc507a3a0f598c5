"""Settings and files as Cloudomation's flows use them: several fields at once, fresh reads,
text and base64 file content, `system.setting(name, value=)` and the listings."""

from __future__ import annotations

import base64

from conftest import assert_refused, run_flow, wait_until

from flowrt.status import Status


def test_careless_record_calls_raise_catchable_errors_and_store_nothing(client, tmp_path):
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            system.file('binary').save(content=b'\\xff\\xfe')
            caught = {}
            for label, call in [
                ('field type', lambda: system.setting('s').get(5)),
                ('unknown field', lambda: system.setting('s').load('value', 'colour')),
                ('missing', lambda: system.setting('s').load('value')),
                ('option', lambda: system.setting('s').get('value', convert_binary=False)),
                ('text type', lambda: system.file('f').save(text=b'bytes')),
                ('text and content', lambda: system.file('f').save(text='a', content='b')),
                ('not base64', lambda: system.file('f').save(content='%%', convert_binary=False)),
                ('flag', lambda: system.file('f').get('content', convert_binary='no')),
                ('nul', lambda: system.file('f').save(text='a\\x00b')),
                ('not utf-8', lambda: system.file('binary').get('text')),
                ('filter', lambda: system.settings(filter={'field': 'name'})),
            ]:
                try:
                    call()
                except flow_api.FlowApiError as error:
                    caught[label] = [type(error).__name__, str(error)]
            this.save(output_value=caught)
        """,
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert_refused(
        handle.outputs,
        {
            "field type": ("InvalidCallError", "a field name is a str"),
            "unknown field": ("InvalidCallError", "'colour'"),
            "missing": ("NotFoundError", "no setting named 's'"),
            "option": ("InvalidCallError", "field names only"),
            "text type": ("InvalidCallError", "text is a str"),
            "text and content": ("InvalidCallError", "not both"),
            "not base64": ("InvalidCallError", "not valid base64"),
            "flag": ("InvalidCallError", "True or False"),
            "nul": ("UnstorableValueError", "NUL"),
            "not utf-8": ("InvalidCallError", "not UTF-8"),
            "filter": ("InvalidCallError", "take no arguments"),
        },
    )
    assert [r.name for r in client.list_named("file")] == ["binary"]
    assert client.list_named("setting") == []


def test_a_missing_record_raises_what_resource_not_found_error_catches(client, tmp_path):
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            try:
                system.file('absent').load('text')
            except flow_api.ResourceNotFoundError:
                pass
            try:
                system.setting('absent').get()
            except flow_api.exceptions.ResourceNotFoundError as error:
                return this.success(str(error))
        """,
    )
    assert handle.status is Status.ENDED_SUCCESS and "absent" in handle.record().message


def test_get_and_load_read_several_fields_at_once_as_a_tuple_in_the_order_asked(client, tmp_path):
    client.set_setting("config", {"region": "eu"})
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            name, value = system.setting('config').load('name', 'value')
            one = system.setting('config').get('value')
            default = system.setting('config').get()
            stamp = system.setting('config').load('updated_at')
            this.save(output_value={
                'name': name, 'value': value, 'one': one, 'default': default,
                'stamped': stamp.tzinfo is not None,
            })
        """,
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {
        "name": "config",
        "value": {"region": "eu"},
        "one": {"region": "eu"},
        "default": {"region": "eu"},
        "stamped": True,
    }
    calls = [sp.call for sp in handle.savepoints()]
    assert calls[:4] == ["setting.load", "setting.get", "setting.get", "setting.load"]


def test_load_reads_afresh_and_a_restore_answers_reads_from_the_journal(client, tmp_path):
    client.set_setting("counter", 1)
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            first = system.setting('counter').load('value')
            this.save_dump('read')
            this.sleep(this.get('input_value')['nap'])
            again = system.setting('counter').load('value')
            this.save(output_value={'first': first, 'again': again})
            this.sleep(3600)
        """,
        inputs={"nap": 1.5},
        timeout_s=0,
    )
    wait_until(lambda: handle.status is Status.WAITING, 30, "the nap")
    client.set_setting("counter", 2)
    wait_until(lambda: handle.outputs == {"first": 1, "again": 2}, 30, "the second read")
    client.set_setting("counter", 3)
    handle.restore("read", by="name")  # `first` comes back from the journal: still 1
    wait_until(lambda: handle.outputs == {"first": 1, "again": 3}, 30, "the restored run")
    handle.cancel()


def test_file_content_as_text_bytes_and_base64(client, tmp_path):
    raw = bytes(range(256))
    handle = run_flow(
        client,
        tmp_path,
        """
        import base64
        import flow_api

        def handler(system, this):
            notes = system.file('notes.txt')
            notes.save(text='héllo')
            blob = system.file('blob.bin')
            blob.save(content=this.get('input_value')['b64'], convert_binary=False)
            copy = system.file('copy.bin')
            copy.save_base64_content(blob.get_base64_content())
            this.save(output_value={
                'text': notes.get('text'),
                'content': notes.load('content'),
                'size': notes.get('content_size_bytes'),
                'b64': notes.get('content', convert_binary=False),
                'blob_size': blob.get('content_size_bytes'),
                'blob_b64': base64.b64encode(blob.get('content')).decode(),
                'copy_same': copy.get_bytes_content() == blob.get_bytes_content(),
                'listed': [f.name for f in system.files()],
                'via_text': notes.get_text_content(),
            })
        """,
        inputs={"b64": base64.b64encode(raw).decode()},
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    out = handle.outputs
    assert out["text"] == out["content"] == out["via_text"] == "héllo"
    assert out["size"] == len("héllo".encode()) == 6
    assert base64.b64decode(out["b64"]) == "héllo".encode()
    assert out["blob_size"] == 256 and base64.b64decode(out["blob_b64"]) == raw
    assert out["copy_same"] is True
    assert out["listed"] == ["blob.bin", "copy.bin", "notes.txt"]
    stored = {r.name: r.value for r in client.list_named("file")}
    assert stored["blob.bin"] == raw and stored["notes.txt"] == "héllo"


def test_system_setting_with_a_value_creates_or_updates_it_and_listings_give_handles(
    client, tmp_path
):
    client.set_setting("b-existing", "old")
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            handle_only = system.setting('not-made')
            made = system.setting('a-made', value={'n': 1})
            system.setting('b-existing', value='new')
            system.setting('c-empty').save()
            listed = {s.name: s.get('value') for s in system.settings()}
            this.save(output_value={'listed': listed, 'made': made.get(), 'repr': repr(made)})
        """,
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs["listed"] == {"a-made": {"n": 1}, "b-existing": "new", "c-empty": None}
    assert handle.outputs["made"] == {"n": 1} and handle.outputs["repr"] == "<setting 'a-made'>"
    calls = [sp.call for sp in handle.savepoints()]
    assert calls[:4] == ["setting.save", "setting.save", "setting.save", "setting.list"]
    assert client.get_setting("not-made") is None

"""One answer to "does this CPU run bf16 natively", and it is OpenVINO's answer too."""

from edgeseg.cpu import cpu_flags, native_bf16


def test_native_bf16_agrees_with_openvinos_own_view_of_the_cpu():
    import openvino as ov

    assert native_bf16() == ("BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def test_native_bf16_follows_the_flags(monkeypatch):
    from edgeseg import cpu

    for flags, expected in ((frozenset({"avx512f", "avx512_vnni"}), False), (frozenset({"avx512_bf16"}), True),
                            (frozenset({"amx_bf16", "amx_tile"}), True), (frozenset(), False)):
        monkeypatch.setattr(cpu, "cpu_flags", lambda flags=flags: flags)
        assert cpu.native_bf16() is expected
    assert isinstance(cpu_flags(), frozenset)

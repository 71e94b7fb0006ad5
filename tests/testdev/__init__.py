"""chipdev: a small test accelerator backend for chipbench, written for this project.

A C++ extension (chipdev.cpp) registers PyTorch's PrivateUse1 device as `chipdev`: device memory from
its own allocator (host memory, with allocated / peak / reset statistics and free/total), a device
guard with streams and events (a synchronous device: an event stamps the host clock when recorded),
hooks so that `torch.accelerator` finds it, and every operator run through the CPU fallback. It is
what an out-of-tree accelerator plugin looks like to chipbench, on a machine with no accelerator.

    build.py    compiles it once per source and torch version into a cache folder (no import side effects)
    plugin.py   importing it builds/loads the library and registers the device: `--device-plugin
                tests.testdev.plugin`, or `import tests.testdev.plugin` (from the repository root)

See docs/testdev.md.
"""

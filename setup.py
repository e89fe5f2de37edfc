"""Build the Cython extension modules against libfuse 3, found with pkg-config.

``PYFUSE3_LIBFUSE=PREFIX`` links the libfuse installed under PREFIX (``make build`` builds 3.18
there, see tools/build-libfuse) and records PREFIX/lib as the run path; without it, the
system's libfuse 3 is used."""

import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup

MODULES = [
    "_types", "_opcodes", "_backing", "_ring", "_fills", "_readdir", "_request", "_session", "_connection", "_callbacks", "_notify", "_wire",
]
MISSING = """
Building pyfuse3 from source needs a C compiler, pkg-config and the libfuse 3 development
files, and {what}. (A binary wheel needs none of them.) Install them with:
  Debian, Ubuntu:  apt-get install gcc pkg-config libfuse3-dev fuse3
  Fedora:          dnf install gcc pkgconf-pkg-config fuse3-devel fuse3
  Arch:            pacman -S gcc pkgconf fuse3
(fuse3 provides fusermount3, needed at run time.) Then run the installation again.
"""


def fail(what: str) -> None:
    sys.stderr.write(MISSING.format(what=what))
    raise SystemExit(1)


PREFIX = os.environ.get("PYFUSE3_LIBFUSE")


def pkg_config(*args: str) -> list[str]:
    if shutil.which("pkg-config") is None:
        fail("pkg-config is not installed")
    env = dict(os.environ)
    if PREFIX:
        # searched before the system's directories: this fuse3.pc wins
        env["PKG_CONFIG_PATH"] = os.path.join(PREFIX, "lib", "pkgconfig")
    try:
        out = subprocess.run(["pkg-config", *args, "fuse3"], check=True, capture_output=True,
                             text=True, env=env).stdout
    except subprocess.CalledProcessError:
        fail("pkg-config does not know 'fuse3' (libfuse3-dev is not installed)")
    return out.split()


def liburing() -> tuple[list[str], list[str]]:
    """Compiler and linker flags of liburing (FUSE over io_uring, _ring only), or none: then
    that module builds without it and the mount option io_uring says what is missing."""
    try:
        out = subprocess.run(["pkg-config", "--cflags", "--libs", "liburing"], check=True,
                             capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return [], []
    return ["-DPYFUSE3_WITH_LIBURING=1", *(f for f in out if not f.startswith("-l"))], \
        [f for f in out if f.startswith("-l")]


def extensions() -> list[Extension]:
    if "--version" in sys.argv or "egg_info" in sys.argv or "dist_info" in sys.argv:
        return []
    version = pkg_config("--modversion")[0]
    if tuple(int(p) for p in version.split(".")[:2]) < (3, 10):
        fail(f"libfuse 3.10 or newer (found {version})")
    cflags, libs = pkg_config("--cflags"), pkg_config("--libs")
    if PREFIX:
        libs.append(f"-Wl,-rpath,{os.path.join(PREFIX, 'lib')}")
    import sysconfig

    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        fail(f"the C compiler '{compiler}' was not found")
    from Cython.Build import cythonize

    macros = [("FUSE_USE_VERSION", "314")]
    if os.environ.get("PYFUSE3_LINETRACE"):
        macros.append(("CYTHON_TRACE", "1"))
    uring_cflags, uring_libs = liburing()
    exts = [
        Extension(f"pyfuse3.{name}", [f"src/pyfuse3/{name}.pyx"], include_dirs=["src/pyfuse3"],
                  # every module sees the same RingState layout: all get liburing's flags
                  extra_compile_args=[*cflags, "-Wno-unused-function", *uring_cflags],
                  extra_link_args=[*libs, *(uring_libs if name == "_ring" else [])],
                  define_macros=macros)
        for name in MODULES
    ]
    return cythonize(exts, compiler_directives={"language_level": 3, "embedsignature": True},
                     annotate=bool(os.environ.get("PYFUSE3_ANNOTATE")), quiet=True)


setup(ext_modules=extensions())

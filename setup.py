"""Build glue for the native chunker; all other metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "snapstore._chunker",
            sources=["snapstore/_chunker.c"],
            extra_compile_args=["-O3", "-std=c99"],
        )
    ]
)

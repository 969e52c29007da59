"""Build hook: ship the default configuration (conf/*.yaml) inside the package.

The defaults stay in the checkout's top-level ``conf/`` (where users read and edit them);
the wheel carries a copy as ``ctx_spark/conf/*.yaml``, which ``ctx_spark.config`` reads
with importlib.resources, so an installed package works from any directory. Everything
else about the package is in setup.cfg.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConf(build_py):
    """build_py that also copies conf/*.yaml into the built ctx_spark package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "ctx_spark" / "conf"
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted((Path(__file__).resolve().parent / "conf").glob("*.yaml")):
            self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildWithConf})

"""The engine must import and train with no Qt installed."""
import subprocess
import sys
import textwrap


def test_engine_imports_and_trains_without_qt(tmp_path):
    script = textwrap.dedent("""
        import sys, importlib.abc
        class NoQt(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt', 'shiboken6', 'studio'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, NoQt())
        import pkgutil, importlib, engine
        for mod in pkgutil.walk_packages(engine.__path__, 'engine.'):
            importlib.import_module(mod.name)
        from engine.cli import main
        sys.exit(main(['train', 'ring8', '--steps', '5', '--out', sys.argv[1]]))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Finished at step 5" in result.stderr

"""What several test modules share: tiny datasets in real on-disk formats (dataset_files), student jobs
and a digits workspace (executors), result-record fixtures (results), fresh virtual environments
(plugin_venv), benchmark scripts as modules (benchmarks), call recorders (recording)."""

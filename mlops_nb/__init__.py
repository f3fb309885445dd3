"""A Jupyter-centric MLOps framework: notebooks that explore are the notebooks that run, version, serve and monitor.

Modules:

- `mlops_nb.artifacts`: Saving and loading models with skops, which does not execute code on load: an explicit list of trusted types, and a sha256 checked on every load.
- `mlops_nb.card`: `ModelCard`: the typed record of a model version: what it was trained on and with, how it scored, which files it is made of.
- `mlops_nb.checks`: The check of the whole `params.yaml` that `mlops-nb check` and every stage run before any work: the types and ranges of every section, the model, its hyperparameters, the search space and the sampler, the metric.
- `mlops_nb.config`: Project-root discovery, loading and validating `params.yaml` (one line per error, naming the key), the stages of `dvc.yaml` and `ProjectPaths`: every file of a project.
- `mlops_nb.drift`: The per-feature drift statistics of a batch against the reference profile: distances and tests computed from the profile's bins and counts, never from raw training rows, and the multiple-testing correction.
- `mlops_nb.engines`: How a pipeline notebook is executed: papermill's engines (in this process, or in a Jupyter kernel), the executed notebook made deterministic, memory given back after each cell, and the library's logging in the report.
- `mlops_nb.evaluate`: Test-set metrics, and the plots a reviewer wants (confusion matrix, ROC, residuals, feature importances) as data `dvc plots` renders and as PNG.
- `mlops_nb.features`: The feature pipeline as one scikit-learn `ColumnTransformer`: impute and scale numbers, impute and one-hot categories, unknown categories ignored. It stays convertible to ONNX with skl2onnx.
- `mlops_nb.monitor`: Drift and data quality of a new batch, or of the server's prediction log, against the reference profile saved with the model; model drift when the batch holds the target; a retrain decision weighted by importance.
- `mlops_nb.monitor_inputs`: What monitoring reads besides the batch: the reference (a model version's model, card and profile, bound to each other by sha256) and the server's prediction log.
- `mlops_nb.myst`: Quarto-flavoured nbdev notebooks converted for myst-nb and Sphinx: cell options as tags, Pandoc attributes stripped, the title cell as a heading, `show_doc` output as Markdown. Pure functions, no files.
- `mlops_nb.parallel`: How the trials of a study run: in N worker processes that give the same trials as one (seeded asks ahead of the results, told in trial order, one journal record per trial), or as Optuna's own loop on a shared PostgreSQL study, on any number of machines, with heartbeats.
- `mlops_nb.profile`: The reference profile written with every model: per-feature bins, quantiles, moments and frequencies of the training split, the target's and the test predictions' distributions and the permutation importances. No raw rows; its size does not grow with the data.
- `mlops_nb.readers`: Reading CSV and Excel files right: the separator detected (and reported), `data.read_options` passed to pandas, dates parsed with their format, and a one-line error naming the file and the option to set when it goes wrong.
- `mlops_nb.registry`: Model versions and stages as git tags, written through GTO (`model@v1.2.0`, `model#prod#3`); registering the workspace's model, promoting and demoting it, getting a version's files.
- `mlops_nb.remote`: The project's DVC remote, named in errors: a version fetched from a remote that cannot be reached fails with one line saying which remote, where it points and why.
- `mlops_nb.render`: One notebook processed for the docs site as nbdev would hand it to Quarto, with its cells executed the way `nbdev-test` runs them: `show_doc` entries, examples with their outputs, links to the source.
- `mlops_nb.reproduce`: Exact reproduction of a registered model version: its commit rerun in a temporary git worktree, test metrics and test-set predictions compared with the registered ones.
- `mlops_nb.retrain`: The git-native retrain loop: monitor the new data, point the pipeline at it, `dvc repro`, commit on a branch, register, compare challenger with champion on the newest labelled data, promote only if it is not worse.
- `mlops_nb.roles`: Each input column gets a role (numeric, categorical, datetime, identifier, text, constant) with the reason, so that a date, an ID or a name column does not become a thousand one-hot columns.
- `mlops_nb.runs`: Every run in one table: the committed runs and the experiments (`dvc exp show`), with the parameters that differ, the test and cross-validation metrics, the data's hash and the registered version.
- `mlops_nb.serve`: The HTTP model server: an app factory (FastAPI) speaking the Open Inference Protocol (V2) and TF Serving's V1 `:predict`, with token auth, body and batch limits, Prometheus metrics, a prediction log, and hot reload when a stage's git tag moves. `mlops-nb serve` runs it with uvicorn.
- `mlops_nb.serve_handlers`: The request path of the model server: responses and errors, the request-id/size-limit/metrics middleware, token, content type and model checks, and the V2 `infer` and V1 `:predict` handlers.
- `mlops_nb.serve_metrics`: The server's Prometheus metrics (one `mlops_nb_` prefix, correct across `--workers N`), the model-info and drift gauges read at scrape time, and the prediction log: JSON lines written by a background thread, never blocking a request.
- `mlops_nb.serve_runtime`: ONNX export with a parity check, and the two runtimes a server predicts with: ONNX Runtime when the converted model was proven equal on the test split, scikit-learn otherwise. Loading a version (workspace or registered) with every file's sha256 checked.
- `mlops_nb.serve_schema`: The serving contract, derived from the training schema: the Open Inference Protocol (V2) and TF Serving-style (V1) request and response models, and the decoding of a request into one numpy array per feature column. Every refusal names the input (column) and the instance index.
- `mlops_nb.serve_state`: What a running model server holds: its settings, the loaded version (the workspace's, a registered one, or a stage's) with its request decoder, and the hot reload that follows a stage's git tag.
- `mlops_nb.site`: The offline docs site: pages from the notebooks and the latest run's reports, nbdev's processing with a cache, Sphinx, and README.md from `nbs/index.ipynb`.
- `mlops_nb.stage`: Running a pipeline notebook as a DVC stage through papermill: parameters from `params.yaml`, an executed notebook that is byte-identical for identical inputs, and a one-line error when a cell fails.
- `mlops_nb.study`: The tuning step of the pipeline as one call (subsample, open or resume the study, run it here or with shared workers, the summary for the card), a worker that joins a shared study from another machine, and the dashboard. Where a study lives: `study_storage`; how its trials run: `parallel`.
- `mlops_nb.study_storage`: Where a study lives and what it is called: the embedded journal file or a shared PostgreSQL database (its password never shown), the study named from what shapes its result, and an existing study resumed or refused.
- `mlops_nb.train`: Features and model as one scikit-learn `Pipeline`, cross-validated, and the model card that records what went into it.
- `mlops_nb.tune`: The search itself: the search space from `params.yaml` turned into Optuna distributions, samplers (TPE, random, grid, CMA-ES) and pruners (median, Hyperband), the cross-validated objective, the subsample for large data, and the trial table, summary and plots of a study. Where a study is stored: `study_storage`; how its trials run: `parallel`; the tuning step as one call: `study`.
- `mlops_nb.validate`: Schema inference, the data checks that stop a bad data set before any model is touched, cleaning, data-quality metrics and the train/test split.
- `mlops_nb.version_files`: A registered model version and its files, read through DVC at the version's commit whatever the workspace holds: the card, JSON and text files, and files fetched with their sha256 and trusted types checked.
- `mlops_nb.warm`: Stage commands under `dvc repro` start warm: each runs in a child forked from a server that has imported the libraries every stage uses, instead of importing them again in a new process per stage."""

__version__ = "0.1.0"

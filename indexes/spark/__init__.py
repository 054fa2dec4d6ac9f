"""The Spark engine of `segue build --engine spark` and `segue precompute --engine spark`.

Imported only when the Spark engine is chosen: the local engine and the service never import
pyspark (an optional dependency, `pip install 'segue[spark]'`)."""

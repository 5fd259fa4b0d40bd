"""The data side: sources, schema and units, the network a source measures, quality checks, the
lake, datasets, feature sketches, the station graph, AQI and fault injection.

Imports nothing else of ``core`` but ``configuration``.
"""

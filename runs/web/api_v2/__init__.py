"""Apache Airflow 3's REST API v2, the subset this product has (issue 15), served under /api/v2/.

Paths, parameters, field names, pagination and errors follow Airflow 3.3's core API, so that
``apache-airflow-client`` and ``airflowctl`` work against it; fields our model has beyond
Airflow's (map_path, item identity, tolerated failures) are extra and clients ignore them.
The actions call runs/services.py, as the dashboard's do.
"""

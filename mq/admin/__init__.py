"""``mqadmin``: the admin tool (``cli``), the admin requests it makes (``api``) and how it prints (``output``)."""

ops_table: object

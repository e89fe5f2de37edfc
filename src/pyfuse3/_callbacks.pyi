lowlevel_ops: object

def main(global_config, **settings): pass

def test_the_package_reports_its_version():
    import speciosa

    assert speciosa.__version__ == "0.1.0"

// placeholder while the package is being assembled

/// A catalog that passed validation, with the warnings loading it raised (unknown and legacy keys).
/// Each warning is one self-contained line that starts with the file name; log them at start-up.
public struct LoadedCatalog: Sendable {
    public let catalog: Catalog
    public let warnings: [String]

    public init(catalog: Catalog, warnings: [String]) {
        self.catalog = catalog
        self.warnings = warnings
    }
}

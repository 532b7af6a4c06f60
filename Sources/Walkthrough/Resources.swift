import Foundation

public enum WalkthroughResources {
    /// `seed002-article.json`: the 6×6 word embeddings and 6×4 query weights (and the other numbers) that seed 002 prints.
    public static var articleWeightsURL: URL? {
        Bundle.module.url(forResource: "seed002-article", withExtension: "json", subdirectory: "Resources")
    }
}

from services.nodewatch.main import main

main()
